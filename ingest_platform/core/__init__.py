"""What has no domain knowledge: settings, the lake and its durable writes, the dataset
descriptor and its validated write path, partitions, calendars, and the HTTP layer."""
