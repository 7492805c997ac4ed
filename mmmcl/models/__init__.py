from .backbones import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .initializers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .peers import *  # noqa: F401,F403
from .targets import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
