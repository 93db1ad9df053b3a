"""Development builders shared by tests/ and bench/, never shipped and never imported by smol_tools.

- tiny_model: trains the tiny Qwen3_5ForCausalLM on the scripted conversations (torch, transformers);
- tiny_gguf: its GGUFs, made by the packaging pipeline's own convert and quantize steps;
- scripted: the scripted turns as training and test cases (the data itself is package data,
  smol_tools/tiny/scripted_conversations.json);
- mtp_checkpoint: the tiny model plus a seeded random multi-token-prediction head;
- ship_tiny: `python -m devkit.ship_tiny` regenerates the GGUF shipped in smol_tools/tiny/.

They live outside tests/ so that benchmarks build the same models without importing the test suite.
"""
