"""nova-twisted: a compute cloud controller on Twisted, in the spirit of OpenStack Nova."""

__version__ = "0.1.0"
