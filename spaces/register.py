"""Registration with Ultralytics' YAML parser: `yolo_attention_modules.register` does it (every environment that
builds one of our models needs it, not only the search's), re-exported here for the search's processes.
Importing `spaces` (or `yolo_attention_modules`) runs it; each Ray worker does too."""

from yolo_attention_modules.register import register_modules, registered_modules

__all__ = ["register_modules", "registered_modules"]
