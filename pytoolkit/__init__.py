"""toolkit: one application stack deployed on bare servers, Docker, or Kubernetes."""

__version__ = "0.1.0"
