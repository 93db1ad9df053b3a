"""Runtime adapters behind one interface: stream the events of one assistant turn."""

from .base import Backend, BackendError, BackendStatus, CancelToken, SamplingParams
from ..events import TurnComplete, TurnEvent, Usage

__all__ = ["Backend", "BackendError", "BackendStatus", "CancelToken", "SamplingParams",
           "TurnComplete", "TurnEvent", "Usage"]
