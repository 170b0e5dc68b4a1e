"""Reference data: the instrument universe, trading sessions and exchange holidays."""
