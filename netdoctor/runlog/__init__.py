"""The run log: one SQLite file per run, written by the capture half, read by the analysis half.

Importing this package never imports torch: the writer takes numpy arrays.
"""

from netdoctor.runlog.reader import open_run
from netdoctor.runlog.run_data import EpochRecord, Event, ParamInfo, RunData, SiteInfo

__all__ = ["EpochRecord", "Event", "ParamInfo", "RunData", "SiteInfo", "open_run"]
