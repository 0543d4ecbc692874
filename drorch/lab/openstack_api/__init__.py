"""A small OpenStack-compatible HTTP API that plays the NHN Cloud site in the drorch lab.

No maintained fake OpenStack server exists, so the lab serves just enough of Keystone (v2.0 and
v3), Nova, LBaaS v2 (Octavia paths and NHN's Neutron paths) and Magnum (NKS) for the unmodified
``openstacksdk`` to authenticate, discover versions and drive the resources drorch fails over.
State lives in memory; it is lab-only code and never talks to a real cloud.
"""

from drorch.lab.openstack_api.app import make_app
from drorch.lab.openstack_api.config import ApiConfig
from drorch.lab.openstack_api.seed import DEFAULT_SEED, load_seed
from drorch.lab.openstack_api.state import LabState

__all__ = ["DEFAULT_SEED", "ApiConfig", "LabState", "load_seed", "make_app"]
