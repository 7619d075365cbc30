"""Model runtime: the engines behind small Protocols (base.py), the model registry with checksums, device choice,
and the loader that builds each engine from the settings. Heavy libraries load only inside the engine that
needs them."""
