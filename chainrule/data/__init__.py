"""Datasets, splits, preprocessing, minibatches and augmentation (NumPy arrays throughout).

See docs/data.md. Loaders return a `Dataset`; images are uint8 (N, H, W, C) in HWC order and
labels int64. `DataLoader` yields float32 / int64 NumPy batches.
"""
from ._cache import CacheWarning, cache_dir
from ._safe_pickle import UnsafePickleError
from .augment import (Augment, FlipCrop, FlipTranslate, color_jitter, flip_shift_views, predict_tta, random_crop,
                      random_flip)
from .cifar10 import (BINARY_RELEASE, CIFAR10_CLASSES, PYTHON_RELEASE, download_cifar10,
                      load_cifar10)
from .dataset import DataError, Dataset
from .download import ChecksumError
from ._decode import DEFAULT_MAX_IMAGE_PIXELS, ImageSizeError
from .image_folder import (DEFAULT_MAX_IMAGE_BYTES, IMAGE_EXTENSIONS, load_image_folder,
                           parse_image_size)
from .loader import DataLoader
from .preprocessing import (AppendBias, Compose, Flatten, MeanImage, NotFittedError,
                            Standardize)
from .whitening import ZCAWhiten, patch_whitening_filters
from .registry import DATASET_SPECS, get_dataset
from .splits import Split, kfold, train_val_indices, train_val_split
from .toy import (TOY_2D, load_digits, make_2d, make_blobs, make_circles, make_moons, make_spiral, make_xor,
                  spiral_dataset)

__all__ = [
    "Dataset", "DataError", "UnsafePickleError", "ChecksumError", "CacheWarning",
    "cache_dir", "get_dataset", "DATASET_SPECS",
    "load_cifar10", "download_cifar10", "CIFAR10_CLASSES", "PYTHON_RELEASE", "BINARY_RELEASE",
    "load_image_folder", "IMAGE_EXTENSIONS", "parse_image_size", "ImageSizeError",
    "DEFAULT_MAX_IMAGE_BYTES", "DEFAULT_MAX_IMAGE_PIXELS",
    "load_digits", "make_spiral", "spiral_dataset",
    "make_2d", "TOY_2D", "make_circles", "make_xor", "make_blobs", "make_moons",
    "train_val_split", "train_val_indices", "kfold", "Split",
    "MeanImage", "Standardize", "ZCAWhiten", "patch_whitening_filters", "Flatten", "AppendBias", "Compose", "NotFittedError",
    "DataLoader",
    "Augment", "FlipCrop", "FlipTranslate", "random_flip", "random_crop", "color_jitter", "flip_shift_views",
    "predict_tta",
]
