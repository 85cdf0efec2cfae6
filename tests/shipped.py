"""What the shipped model files are: one place to change when a retrained model lands."""

SCOUT_MODEL_ID = "scout-int8-5"      # network id in models/scout_int8.onnx's metadata
RERANKER_MODEL_ID = "scout-rerank-int8-2"   # in models/scout_rerank_int8.onnx
