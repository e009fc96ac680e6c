"""Installable package of the fraud-detection service (``pip install -e .[dev]``)."""
from setuptools import find_packages, setup

setup(
    name="fraudstream",
    version="0.1.0",
    description="Real-time card-fraud detection with online learning on Kafka (Faust + River)",
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["app", "app.*", "evaluation", "evaluation.*"]),
    py_modules=["settings"],
    install_requires=[
        "faust-streaming==0.15.3",
        "aiokafka==0.14.0",
        "river==0.26.1",
        "dataclasses-avroschema==0.71.1",  # without [faust]: that extra pins an old faust
        "python-schema-registry-client==2.6.1",  # likewise without [faust]
        "fastavro==1.13.1",
        "prometheus-client==0.26.0",
        "numpy>=2.0,<3",
        "scikit-learn==1.9.1",
        "tqdm==4.70.1",
        "httpx==0.28.1",
    ],
    extras_require={
        "spark": ["pyspark==4.1.1", "pandas>=2.2,<3", "pyarrow>=15"],
        "report": ["matplotlib==3.11.2", "pandas>=2.2,<3", "pyarrow>=15"],
        "profile": ["py-spy==0.4.3"],
        "dev": [
            "pytest==9.2.0",
            "pytest-asyncio==1.5.0",
            "pytest-timeout==2.4.0",
            "hypothesis==6.170.17",
            "pyyaml==6.0.3",
            "faker==40.63.0",
        ],
    },
    entry_points={"console_scripts": ["fraud-replay=app.replay:main", "fraudstream=app.cli:main"]},
)
