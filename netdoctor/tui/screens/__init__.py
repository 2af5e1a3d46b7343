"""Screens: the main view, a layer's detail, a diagnosis, help, and the before/after comparison."""
