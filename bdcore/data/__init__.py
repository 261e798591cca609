"""The data layer: named datasets, their sources, and pairing a labeled set with an unlabeled one.

Names are imported on first use (PEP 562): a decoding worker process imports
``bdcore.data.prepared`` and ``collection`` only, never torch (it starts in a fraction of a second
and holds tens of megabytes instead of hundreds)."""
from importlib import import_module

_WHERE = {
    "CollectionError": "collection", "CorruptFileError": "idx", "ImageSet": "imageset",
    "PairSpec": "loading", "load_pair": "loading", "PairedData": "pairing", "pair_datasets": "pairing",
    "DATASETS": "registry", "TRANSFER_SET": "registry", "check_dataset_path": "registry",
    "load_dataset": "registry",
    "locate_dataset": "registry", "DatasetNotFoundError": "sources", "data_dir": "sources",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
