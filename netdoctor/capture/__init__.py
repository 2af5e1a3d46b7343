"""The capture half: everything that imports torch (probes, the monitor, ``watch``)."""

from netdoctor.capture.monitor import Monitor
from netdoctor.capture.schedule import SamplingSchedule
from netdoctor.capture.watch import watch

__all__ = ["Monitor", "SamplingSchedule", "watch"]
