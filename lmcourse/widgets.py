"""Interactive widgets used by the chapters, built so they can be tested headlessly.

Each builder returns an object exposing its controls (ipywidgets) and a `render()`
that redraws from the controls' current values and returns what it drew (data, not
pixels), so a test can set values and read the result without a browser.
"""
from __future__ import annotations
