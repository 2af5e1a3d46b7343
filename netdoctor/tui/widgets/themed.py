"""Widgets that draw rich renderables get their colours from the current theme through this."""

from __future__ import annotations

from textual.widget import Widget

from netdoctor.tui.palette import Palette


class Themed(Widget):
    """A widget with a ``palette`` for the current theme; it redraws when the theme changes."""

    _palette: tuple[str, Palette] | None = None

    def on_mount(self) -> None:
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def _theme_changed(self) -> None:
        self._palette = None
        self.theme_changed()

    def theme_changed(self) -> None:
        """Redraw in the new colours; widgets that bake styles into their content override this."""
        self.refresh()

    @property
    def palette(self) -> Palette:
        theme = self.app.theme
        if self._palette is None or self._palette[0] != theme:
            self._palette = (theme, Palette.from_variables(self.app.get_css_variables()))
        return self._palette[1]
