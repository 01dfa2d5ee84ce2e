"""Command-line entry points: the twistd plugin glue and nova-manage."""
