"""Typed errors a user can cause. Each message is one clear sentence the UI can show as is."""


class FacemaskError(Exception):
    """Base class: something the user can fix (bad input, missing file, wrong dataset)."""


class ImageError(FacemaskError):
    """An image could not be used: not an image, truncated, too large."""


class VideoError(FacemaskError):
    """A video could not be read or written."""


class DatasetError(FacemaskError):
    """A dataset folder is missing, empty or has a missing class."""


class ModelError(FacemaskError):
    """A model directory is missing, incomplete or unreadable."""


class WeightsMissingError(ModelError):
    """ImageNet weights for a backbone are not in the Keras cache."""


class RunError(FacemaskError):
    """A training run could not be started, resumed or found."""
