"""The file MLflow loads the registered model from ("models from code"): it names the model class,
so no pickled Python object is stored with a model version."""

import mlflow

from m5_assets.forecast.pyfunc import DemandForecaster

mlflow.models.set_model(DemandForecaster())
