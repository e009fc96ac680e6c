"""The whole test session runs the harness's configuration (one partition, a model per partition,
no alignment: :mod:`app.testing.single_partition`) unless the environment or a test says otherwise.
Set here, before any test module imports ``settings``, so the session's topics and workers agree."""
from app.testing.single_partition import use_single_partition

use_single_partition()
