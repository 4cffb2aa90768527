"""What a checkpoint does to each flag, declared where the flag is defined, and the frozen run configuration.

Every flag says, in its ``add_argument`` call, what happens to it when a checkpoint is read (``policy=``)::

    parser.add_argument("--lr", policy=SCHEDULE, type=POSITIVE, default=0.0002, help="...")

options.resolution applies the policies, once, for --continue_train and test.py (and validation reads the result):

==========  =============================================  ====================  ===============================
policy      --continue_train, flag not typed / typed       source                test.py
==========  =============================================  ====================  ===============================
ARCH        the checkpoint's / must equal it               "architecture"        the checkpoint's (typed: noted)
ARCH_SOFT   the checkpoint's / the typed value             "architecture"        the checkpoint's (typed: noted)
SCHEDULE    the checkpoint's / takes effect from the       "schedule"            -
            epoch training resumes at (said)
FIXED       the checkpoint's / noted and ignored           "schedule"/"options"  the checkpoint's (typed: noted)
RESUMED     the checkpoint's / the typed value             "options"             the command line
TRAINED     the checkpoint's / must equal it               "options"             the checkpoint's unless typed
RUN         the command line (belongs to this run)         -                     the command line
==========  =============================================  ====================  ===============================

A flag defined without a policy is refused when the parser is built, so none is taken from a checkpoint by default.
A model may change the policy of a shared flag (``parser.set_policies(direction=RUN)``), as it changes defaults.
ARCH and ARCH_SOFT flags are read from the checkpoint's "architecture" (models.config.ModelSpec.flags: a new one is
a field of GeneratorConfig or DiscriminatorConfig that ModelSpec records); where it holds None the flag does not
shape those networks (``--n_blocks`` of ``--netG iunet``) and is not compared.
"""
import argparse
import enum


class Policy(enum.Enum):
    ARCH = "architecture that must match"
    ARCH_SOFT = "architecture that may differ"
    SCHEDULE = "schedule"
    FIXED = "fixed when training started"
    RESUMED = "taken from the checkpoint when resuming"
    TRAINED = "taken from the checkpoint when resuming and testing"
    RUN = "belongs to this run"


ARCH, ARCH_SOFT, SCHEDULE, FIXED = Policy.ARCH, Policy.ARCH_SOFT, Policy.SCHEDULE, Policy.FIXED
RESUMED, TRAINED, RUN = Policy.RESUMED, Policy.TRAINED, Policy.RUN


class _Declaring:
    """``add_argument`` with the flag's ``policy`` (required); kept on the argparse action."""

    def add_argument(self, *args, policy=None, **kwargs):
        action = super().add_argument(*args, **kwargs)
        if action.dest != "help":
            if not isinstance(policy, Policy):
                raise TypeError(f"{'/'.join(action.option_strings) or action.dest}: declare what a checkpoint does to "
                                f"it (add_argument(..., policy=util.flags.RUN, ...); see util/flags.py)")
            action.policy = policy
        return action


class _Group(_Declaring, argparse._ArgumentGroup):
    pass


class FlagParser(_Declaring, argparse.ArgumentParser):
    """argparse whose flags (in groups too) declare their checkpoint policy."""

    def add_argument_group(self, *args, **kwargs):
        group = _Group(self, *args, **kwargs)
        self._action_groups.append(group)
        return group

    def set_policies(self, **policies):
        """Changes the policy of flags already defined (as ``set_defaults`` changes defaults)."""
        actions = {a.dest: a for a in self._actions}
        for dest, policy in policies.items():
            if dest in actions:  # (a probe parser with only a model's own flags lacks the shared ones)
                actions[dest].policy = policy

    def policies(self) -> dict:
        """{destination: Policy} of every flag."""
        return {a.dest: a.policy for a in self._actions if hasattr(a, "policy")}


class FrozenConfigError(AttributeError):
    pass


class RunConfig:
    """A run's configuration, resolved once (options.resolution): flag values as attributes (``config.lr``,
    ``vars(config)``) and each flag's policy. Read-only: setting an attribute raises FrozenConfigError;
    ``replace`` returns a changed copy."""
    __slots__ = ("__dict__", "_policies")

    def __init__(self, values: dict, policies: dict = None):
        self.__dict__.update(values)
        object.__setattr__(self, "_policies", dict(policies or {}))

    def __setattr__(self, name, value):
        raise FrozenConfigError(f"the run configuration is resolved once and read-only: cannot set {name} "
                                f"(make a changed copy with replace())")

    def __delattr__(self, name):
        self.__setattr__(name, None)

    def __reduce__(self):
        return RunConfig, (dict(vars(self)), self._policies)

    def __repr__(self):
        return "RunConfig(" + ", ".join(f"{k}={v!r}" for k, v in sorted(vars(self).items())) + ")"

    def replace(self, **changes) -> "RunConfig":
        return RunConfig({**vars(self), **changes}, self._policies)

    def policy(self, name: str) -> Policy:
        """The policy of flag ``name``; RUN for values that are not flags (is_train, a model's fixed defaults)."""
        return self._policies.get(name, RUN)

    def flags(self, *policies: Policy) -> list:
        """The flags with one of ``policies``, in the order they were defined."""
        return [k for k, p in self._policies.items() if p in policies and k in vars(self)]

    def record(self) -> dict:
        """The plain values (numbers, strings, lists of them): what a checkpoint keeps as its "options"."""
        plain = (str, int, float, bool, type(None))
        return {k: v for k, v in vars(self).items()
                if isinstance(v, plain) or (isinstance(v, list) and all(isinstance(x, plain) for x in v))}
