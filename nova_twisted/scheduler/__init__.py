"""nova-scheduler: filters and weighs hosts, then claims resources on one."""
