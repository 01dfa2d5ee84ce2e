"""Compute: the API layer both front ends use, and the nova-compute service."""
