"""The HTTP front ends: compute v2.1, identity v3 and image v2 on Twisted Web."""
