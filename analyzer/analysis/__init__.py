"""The analysis run (``civicpulse analyze``): plan what is new, embed it and score sentiment on an
engine (local or Ray), update themes per source, detect emerging needs, write it all in one
transaction and record the run's manifest."""

from analyzer.analysis.engines import ENGINES, Engine, LocalEngine, RayEngine, make_engine
from analyzer.analysis.pipeline import code_version, load_records, run_analysis
from analyzer.analysis.plan import REFIT_SHARE, Plan, make_plan
from analyzer.analysis.results import SENTIMENT_COLUMNS, RecordResults
from analyzer.analysis.theme_stage import MIN_RECORDS_FOR_THEMES, run_themes

__all__ = [
    "ENGINES",
    "MIN_RECORDS_FOR_THEMES",
    "REFIT_SHARE",
    "SENTIMENT_COLUMNS",
    "Engine",
    "LocalEngine",
    "Plan",
    "RayEngine",
    "RecordResults",
    "code_version",
    "load_records",
    "make_engine",
    "make_plan",
    "run_analysis",
    "run_themes",
]
