"""The model runtime: loading a model, predicting, batching, warming up.

Loads the model named by MODEL_URI and describes it (`model`), calls its predict, directly
when MLflow's checks were already made (`direct_predict`), combines concurrent requests
(`batching`), runs a request through parse, validate, predict and encode (`scoring`), tells
an input the model refuses from a model failure (`input_refusal`), measures what a request
costs the predict calls (`predict_cost`), and proves a worker can answer before it is ready
(`warm_up`). Knows the protocol, not HTTP.
"""
