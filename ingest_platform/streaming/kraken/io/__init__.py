"""The stream's I/O: the WebSocket transport, the connection that drives the protocol over it,
and the thread that hosts the connection for the Dagster op."""
