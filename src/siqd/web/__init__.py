"""The dashboard siqd serves when [web] listen is set: HTML pages with inline SVG charts, and /metrics.

siqd imports this package only then, because http.server and its imports
would otherwise stay in the daemon's memory for nothing.
"""
