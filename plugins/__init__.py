"""Drop-in providers of nova-twisted's interfaces (drivers, filters, weighers).

Found at start-up with ``twisted.plugin.getPlugins(IFace, plugins)`` and
chosen by name in nova.conf.
"""
