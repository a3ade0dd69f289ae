"""Data loaders for the recipes (installed as `zoo.datasets`).

Every loader works offline on data that ships inside an installed package; larger datasets come
from tensorflow-datasets when they are already on disk.
"""
