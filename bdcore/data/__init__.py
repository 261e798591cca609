"""The data layer: named datasets, their sources, and pairing a labeled set with an unlabeled one."""
from .collection import CollectionError
from .idx import CorruptFileError
from .imageset import ImageSet
from .loading import PairSpec, load_pair
from .pairing import PairedData, pair_datasets
from .registry import DATASETS, check_dataset_path, load_dataset, locate_dataset
from .sources import DatasetNotFoundError, data_dir

__all__ = ["DATASETS", "CollectionError", "CorruptFileError", "DatasetNotFoundError", "ImageSet",
           "PairSpec", "PairedData", "check_dataset_path", "data_dir", "load_dataset", "load_pair",
           "locate_dataset", "pair_datasets"]
