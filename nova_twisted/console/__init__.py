"""Consoles: tokens for the browser console proxies."""
