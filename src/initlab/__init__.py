"""initlab: neural-network weight initialization for PyTorch."""
__version__ = "0.1.0"
