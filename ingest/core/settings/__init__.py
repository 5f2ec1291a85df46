"""Every setting citewise has, one small section per area, composed into `Settings`.

The sections live on the ground floor so each layer can take the section it needs without importing
the layer that owns the rest; `citewise config --markdown` prints the reference generated from them.
"""

from ingest.core.settings.index import IndexSettings
from ingest.core.settings.ingest import IngestSettings
from ingest.core.settings.models import ModelSettings
from ingest.core.settings.research import MAX_QUESTION_CHARS, PER_REQUEST, ResearchOptions, ResearchSettings
from ingest.core.settings.root import Settings, config_file, load_settings
from ingest.core.settings.search import TOP_K_MAX, QueryAnalysisSettings, RerankSettings, SearchSettings
from ingest.core.settings.server import ServerSettings
from ingest.core.settings.train import TrainSettings

__all__ = ["IndexSettings", "IngestSettings", "MAX_QUESTION_CHARS", "ModelSettings", "PER_REQUEST", "QueryAnalysisSettings",
           "RerankSettings", "ResearchOptions", "ResearchSettings", "SearchSettings", "ServerSettings", "Settings",
           "TOP_K_MAX", "TrainSettings", "config_file", "load_settings"]
