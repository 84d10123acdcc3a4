"""Hand-designed image features (CS231n assignment 1): HOG and hue histograms, batched."""
from .color import color_histogram_hsv, color_histogram_hsv_reference
from .extract import HogColorFeatures, extract_features
from .hog import hog, hog_reference

__all__ = ["hog", "hog_reference", "color_histogram_hsv", "color_histogram_hsv_reference",
           "extract_features", "HogColorFeatures"]
