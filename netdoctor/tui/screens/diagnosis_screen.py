"""A diagnosis in full: message, evidence and ranked fixes, as the text report prints them."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from netdoctor.diagnosis import Diagnosis
from netdoctor.report.text import diagnosis_view


class DiagnosisScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,backspace", "app.pop_screen", "Back")]

    def __init__(self, diagnosis: Diagnosis) -> None:
        super().__init__()
        self.diagnosis = diagnosis

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="diagnosis-full") as box:
            box.border_title = f"{self.diagnosis.rule}  ? explains the rule"
            yield Static(diagnosis_view(self.diagnosis))
        yield Footer()
