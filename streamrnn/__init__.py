"""streamrnn: recurrent networks that learn online, on live streams, as River estimators."""

from .classifier import RecurrentClassifier
from .detector import RecurrentAnomalyDetector
from .errors import BadInput
from .forecaster import RecurrentForecaster
from .regressor import RecurrentRegressor

__version__ = "0.1.0"

__all__ = ["BadInput", "RecurrentAnomalyDetector", "RecurrentClassifier", "RecurrentForecaster", "RecurrentRegressor"]
