"""Rich styles made from the current Textual theme, for the parts drawn as rich renderables.

Widgets styled by CSS follow the theme by themselves; charts, heatmaps and table cells are rich
renderables and need concrete colours. They take them from the theme's text colours
(``$text-error`` and friends, which Textual picks to be legible on the theme's background), so
a chart reads as well in a light theme as in a dark one. Under ``NO_COLOR`` Textual strips the
colours; the glyphs chosen by the widgets still carry the meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rich.style import Style
from textual.color import Color, ColorParseError

from netdoctor.diagnosis import Severity
from netdoctor.tui.health import Health

#: Heat ramp anchors, cold to hot: small gradients read cold, large ones hot.
_HEAT_ANCHORS = ("text-primary", "text-success", "text-warning", "text-error")
HEAT_LEVELS = 8


@dataclass(frozen=True)
class Palette:
    error: Style
    warning: Style
    ok: Style
    info: Style
    muted: Style
    train: Style  # the train loss line
    val: Style  # the validation loss points
    heat: tuple[Style, ...]  # HEAT_LEVELS styles, cold to hot

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> Palette:
        background = _color(variables, "background", Color(0, 0, 0))
        foreground = _color(variables, "foreground", Color(255, 255, 255))

        def text(name: str) -> Color:
            return _color(variables, name, foreground)

        anchors = [text(name) for name in _HEAT_ANCHORS]
        heat = []
        for i in range(HEAT_LEVELS):
            position = i / (HEAT_LEVELS - 1) * (len(anchors) - 1)
            k = min(int(position), len(anchors) - 2)
            heat.append(_style(anchors[k].blend(anchors[k + 1], position - k)))
        muted = foreground.blend(background, 0.45)
        return cls(
            error=_style(text("text-error"), bold=True),
            warning=_style(text("text-warning"), bold=True),
            ok=_style(text("text-success")),
            info=_style(text("text-primary")),
            muted=_style(muted),
            train=_style(text("text-primary")),
            val=_style(text("text-warning")),
            heat=tuple(heat),
        )

    def health(self, level: Health) -> Style:
        return {
            Health.ERROR: self.error,
            Health.WARNING: self.warning,
            Health.OK: self.ok,
            Health.UNKNOWN: self.muted,
        }[level]

    def severity(self, severity: Severity) -> Style:
        return {Severity.ERROR: self.error, Severity.WARNING: self.warning,
                Severity.INFO: self.info}[severity]


def _color(variables: Mapping[str, str], name: str, default: Color) -> Color:
    value = variables.get(name)
    if not value:
        return default
    try:
        color = Color.parse(value)
    except ColorParseError:  # a theme variable that is not a plain colour ("auto 60%")
        return default
    if color.a < 1:  # flatten transparency against the background the theme paints
        base = Color.parse(variables.get("background", "#000000"))
        color = base + color
    return color


def _style(color: Color, bold: bool = False) -> Style:
    return Style(color=color.rich_color, bold=bold)
