"""Typed configs of `forethought eval`: how the agent plans (`MPCConfig`) and what is measured (`EvalConfig`).

The CLI options are generated from these fields (:mod:`forethought._config_cli`), so each default
and help text lives here once; a library user builds the same dataclasses in Python:

>>> cfg = EvalConfig(model="runs/tworoom", out="reports/tworoom", mpc=MPCConfig(samples=300, bf16=True))
>>> run_eval(cfg)   # forethought.evaluation.runner

Imports no torch (``forethought eval --help`` stays fast); ``MPCConfig.build_agent`` imports the
agent when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from forethought._config_cli import parse_json_list, parse_json_object

if TYPE_CHECKING:
    from forethought.models.protocols import LatentWorldModel

PLANNER_NAMES = ("cem", "mppi", "gradient", "random", "ssr", "proposal")
SAMPLING_PLANNERS = ("cem", "mppi")
SUBGOAL_MODES = ("off", "graph")


@dataclass(frozen=True)
class MPCConfig:
    """The evaluated MPC agent: planner, its budget, the objective, and how candidates are rolled out."""

    planner: str = field(default="cem", metadata={
        "help": "planner (ssr: sample-score-rank over --proposal; proposal: one proposal sample per decision, "
                "unscored)", "choices": PLANNER_NAMES})
    samples: int | None = field(default=None, metadata={
        "help": "candidates per planning iteration (default: the planner's; CEM/MPPI 300)"})
    iterations: int | None = field(default=None, metadata={
        "help": "planner iterations per decision (default: the planner's; CEM/MPPI 30)"})
    horizon: int = field(default=5, metadata={"help": "planning horizon in model steps"})
    receding: int = field(default=1, metadata={"help": "model steps executed before replanning"})
    cost: str = field(default="l2", metadata={
        "help": "latent distance to the goal: l2 (squared, LeWM) or l1 (V-JEPA 2-AC)", "choices": ("l2", "l1")})
    reduce: str = field(default="sum", metadata={
        "help": "sum the distance over the horizon (arrive early and stay; TwoRoom 82%% vs 50%% for last at CEM "
                "100x10) or score only the last predicted step", "choices": ("sum", "last")})
    terminal_weight: float = field(default=0.0, metadata={
        "help": "with --reduce sum: add this multiple of the last step's distance"})
    coast: int = field(default=0, metadata={
        "help": "append this many model steps of zero env action to every candidate and score them too: a braking "
                "term (a plan that arrives with speed and would run past the goal pays for it; PointMaze)"})
    state_weights: tuple[float, ...] | None = field(default=None, metadata={
        "help": "plan on the model's state readout (a model trained with --state-weight) instead of the latent "
                "distance: a JSON list of weights per normalized state dim, e.g. PushT's block '[0,0,1,1,1,0,0]'. "
                "The readout was trained with privileged state supervision; reports say so", "type": str})
    latent_weight: float = field(default=0.0, metadata={
        "help": "with --state-weights or --objective: add this multiple of the latent L2 distance"})
    objective: str | None = field(default=None, metadata={
        "help": "plan for your own cost over states, MODULE:FUNCTION or path/file.py:FUNCTION with "
                "FUNCTION(states (B,N,H,S), actions (B,N,H,A)[, goal, past]) -> (B,N) in env units, applied to the "
                "model's state readout (a model trained with --state-weight); FUNCTION.success(states, actions, "
                "goal_state, env), if defined, judges each episode from the true states (docs/adaptation.md)"})
    noise_beta: float = field(default=0.0, metadata={
        "help": "cem/mppi: colored sampling noise over env steps, power 1/f^beta (iCEM); 0 = white, 2-3 = smooth "
                "samples that keep a direction"})
    bf16: bool = field(default=False, metadata={"help": "roll candidates out in bfloat16 (weights cast once)"})
    compile: bool = field(default=False, metadata={
        "help": "torch.compile the candidate rollout (each new batch shape compiles first: tens of seconds)"})
    draft: str | None = field(default=None, metadata={
        "help": "a draft folder (forethought distill): roll the candidates out speculatively, to measure what "
                "speculation does to success (float32; slower at planning's batch sizes)"})
    epsilon: float = field(default=0.03, metadata={
        "help": "with --draft: per-step tolerance relative to the draft's latent scale"})
    gamma: int = field(default=4, metadata={"help": "with --draft: drafted steps per round"})
    subgoals: str = field(default="off", metadata={
        "help": "hierarchical planning for far goals: 'graph' steers the planner toward subgoals found on a graph over "
                "latents of the model's training data (docs/hierarchical.md); --planner stays the low level",
        "choices": SUBGOAL_MODES})
    graph_nodes: int = field(default=2000, metadata={"help": "with --subgoals graph: training frames in the graph"})
    graph_k: int = field(default=1, metadata={
        "help": "with --subgoals graph: link latents of different episodes closer than k model steps of typical motion"})
    subgoal_reach: float | None = field(default=None, metadata={
        "help": "with --subgoals graph: env steps to the subgoal handed to the planner (default horizon x frameskip)"})
    proposal: str | None = field(default=None, metadata={
        "help": "an action proposal (forethought train-proposal): what --planner ssr samples from, or the first "
                "population of cem / mppi. Refused if trained for another model or action space"})
    proposal_steps: int | None = field(default=None, metadata={
        "help": "with --proposal: denoising (DDIM) steps per sample (default: the proposal's)"})
    dynamics: str | None = field(default=None, metadata={
        "help": "a diffusion dynamics folder (forethought train-dynamics): roll the candidates out with it, F steps in "
                "one denoising pass, instead of the model's predictor (any planner but gradient). Refused if trained "
                "for another model"})
    dynamics_steps: int | None = field(default=None, metadata={
        "help": "with --dynamics: denoising (DDIM) steps per chunk (default: the dynamics')"})
    warm_start: str | None = field(default=None, metadata={
        "help": "a policy folder trained through this model (forethought train-policy --method imagination): its "
                "imagined plan is the planner's starting plan at every decision (CEM evaluates it first)"})
    decision_ms: float | None = field(default=None, metadata={
        "help": "real-time budget: wall-clock milliseconds per decision, from the observation to the action. The "
                "planner iterates until it is spent (anytime, at least one iteration: --iterations is the cap); a "
                "decision that still overruns is too late, so the previous plan's next action is taken. Overruns "
                "are reported"})
    seed: int = field(default=0, metadata={"cli": False})

    def __post_init__(self) -> None:
        if self.subgoals not in SUBGOAL_MODES:
            raise ValueError(f"--subgoals must be one of {', '.join(SUBGOAL_MODES)}, got {self.subgoals!r}")
        if self.graph_nodes < 2 or self.graph_k < 1 or (self.subgoal_reach is not None and not self.subgoal_reach > 0):
            raise ValueError(f"need --graph-nodes >= 2, --graph-k >= 1 and --subgoal-reach > 0, got {self.graph_nodes}, "
                             f"{self.graph_k}, {self.subgoal_reach}")
        if self.planner not in PLANNER_NAMES:
            raise ValueError(f"Unknown planner {self.planner!r}; available: {', '.join(PLANNER_NAMES)}")
        for name in ("samples", "iterations"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if not 1 <= self.receding <= self.horizon:
            raise ValueError(f"need 1 <= --receding <= --horizon, got {self.receding}, {self.horizon}")
        if self.planner in ("ssr", "proposal") and self.proposal is None:
            raise ValueError(f"--planner {self.planner} samples from an action proposal: pass --proposal DIR "
                             "(forethought train-proposal)")
        if self.proposal is not None and self.planner not in ("ssr", "proposal", *SAMPLING_PLANNERS):
            raise ValueError(f"--proposal applies to --planner ssr, proposal, cem or mppi, not {self.planner!r}")
        if self.planner == "proposal" and (self.samples is not None or self.iterations is not None):
            raise ValueError("--planner proposal executes one proposal sample per decision: drop --samples / --iterations")
        if self.proposal_steps is not None and (self.proposal is None or self.proposal_steps < 1):
            raise ValueError("--proposal-steps needs --proposal and must be >= 1")
        if self.decision_ms is not None and not self.decision_ms > 0:
            raise ValueError(f"--decision-ms must be > 0 milliseconds, got {self.decision_ms}")
        if self.noise_beta and self.planner not in SAMPLING_PLANNERS:
            raise ValueError(f"--noise-beta applies to the sampling planners (cem, mppi), not {self.planner!r}")
        if self.objective is not None and (self.state_weights is not None or self.draft is not None
                                           or self.cost != "l2" or self.reduce != "sum" or self.terminal_weight):
            raise ValueError("--objective replaces the latent cost: drop --state-weights / --draft / --cost / --reduce / "
                             "--terminal-weight (add the latent distance with --latent-weight)")
        if self.coast < 0 or (self.coast and (self.draft is not None or self.dynamics is not None
                                              or self.objective is not None or self.state_weights is not None)):
            raise ValueError(f"--coast must be >= 0 and applies to the latent goal cost with the model's predictor "
                             f"(not --draft / --dynamics / --objective / --state-weights), got {self.coast}")
        if self.dynamics_steps is not None and (self.dynamics is None or self.dynamics_steps < 1):
            raise ValueError("--dynamics-steps needs --dynamics and must be >= 1")
        if self.dynamics is not None and (self.planner == "gradient" or self.draft is not None or self.compile):
            raise ValueError("--dynamics samples futures without gradients, in its own network: drop --draft / --compile "
                             "and use --planner cem, mppi, random or ssr")
        if self.state_weights is not None:
            if isinstance(self.state_weights, str):  # as given on the command line
                object.__setattr__(self, "state_weights", tuple(parse_json_list(self.state_weights, "--state-weights")))
            if self.draft is not None or self.cost != "l2":
                raise ValueError("--state-weights replaces the latent cost: drop --draft / --cost")
        if self.draft is not None:
            if self.planner == "gradient":
                raise ValueError("--draft: speculative rollouts are forward-only; use --planner cem, mppi or random")
            if self.bf16 or self.compile:
                raise ValueError("--draft rolls candidates out speculatively in float32: drop --bf16 / --compile")

    def planner_settings(self, frameskip: int, samples: int | None = None, iterations: int | None = None) -> dict[str, Any]:
        """Keyword arguments of ``make_planner``; ``samples``/``iterations`` override the configured budget."""
        settings: dict[str, Any] = {"seed": self.seed}
        if self.noise_beta:
            settings.update(noise_beta=self.noise_beta, frameskip=frameskip)
        for name, value in (("samples", samples or self.samples), ("iterations", iterations or self.iterations)):
            if value is not None:
                settings[name] = value
        return settings

    def build_objective(self, model: LatentWorldModel) -> Any:
        """The objective factory this config describes; one serves every agent of an evaluation (a
        compiled rollout stays compiled, a draft is read once)."""
        from forethought.planning import LatentGoalObjective

        if self.draft is not None:
            from forethought.speculative import SpeculativeObjective, load_draft

            draft = load_draft(self.draft, target=model)  # refuses a draft distilled from another model
            return SpeculativeObjective(model, draft, self.epsilon, self.gamma, self.cost, self.reduce,
                                        self.terminal_weight)
        if self.dynamics is not None:
            return self.build_diffusion_objective(model)
        if self.objective is not None:
            from forethought.planning.state_objectives import StateObjective, load_callable

            return StateObjective(model, load_callable(self.objective), latent_weight=self.latent_weight,
                                  bf16=self.bf16, compile=self.compile)
        if self.state_weights is None:
            return LatentGoalObjective(model, self.cost, self.reduce, self.terminal_weight, bf16=self.bf16,
                                       compile=self.compile, coast=self.coast)
        from forethought.planning.objectives import readout_cost

        weights, reduce, latent_weight = self.state_weights, self.reduce, self.latent_weight
        return LatentGoalObjective(model, lambda goal_z: readout_cost(model, goal_z, weights, reduce, latent_weight),
                                   bf16=self.bf16, compile=self.compile)

    def build_diffusion_objective(self, model: LatentWorldModel) -> Any:
        """``--dynamics``: the objective factory this config describes, its candidates rolled out by the
        diffusion dynamics (:class:`~forethought.planning.diffusion_dynamics.DiffusionDynamicsObjective`)."""
        from forethought.models.diffusion_dynamics import load_dynamics
        from forethought.planning.diffusion_dynamics import DiffusionDynamicsObjective

        device = next(model.parameters()).device
        dynamics = load_dynamics(self.dynamics, model, device=device)  # refuses dynamics of another model
        settings = dict(steps=self.dynamics_steps, seed=self.seed, bf16=self.bf16)
        if self.objective is not None:
            from forethought.planning.state_objectives import StateObjective, load_callable

            return StateObjective(model, load_callable(self.objective), latent_weight=self.latent_weight,
                                  dynamics=dynamics, dynamics_settings=settings)
        if self.state_weights is None:
            return DiffusionDynamicsObjective(model, dynamics, self.cost, self.reduce, self.terminal_weight, **settings)
        from forethought.planning.objectives import readout_cost

        weights, reduce, latent_weight = self.state_weights, self.reduce, self.latent_weight
        return DiffusionDynamicsObjective(model, dynamics, lambda goal_z: readout_cost(model, goal_z, weights, reduce,
                                                                                      latent_weight), **settings)

    def wrap_subgoals(self, objective: Any, model: LatentWorldModel, store: Any, episodes: Any, frameskip: int,
                      device: str) -> Any:
        """With ``subgoals="graph"``: ``objective`` as the low level of a
        :class:`~forethought.agent.subgoals.SubgoalObjective` over the latent graph of ``episodes`` of
        ``store`` (the model's training data); else ``objective`` unchanged."""
        if self.subgoals == "off":
            return objective
        from forethought.agent.latent_graph import GraphConfig
        from forethought.agent.subgoals import build_subgoal_objective

        return build_subgoal_objective(objective, model, store, episodes, horizon=self.horizon, receding=self.receding,
                                       frameskip=frameskip, graph=GraphConfig(nodes=self.graph_nodes, k=self.graph_k,
                                                                              seed=self.seed),
                                       reach=self.subgoal_reach, device=device)

    def build_agent(self, model: LatentWorldModel, action_space: Any, device: str, *, objective: Any = None,
                    samples: int | None = None, iterations: int | None = None) -> Any:
        """The :class:`~forethought.agent.MPCAgent` this config describes, for ``model`` on an env with
        ``action_space``; ``objective`` (default: :meth:`build_objective`) and the budget can be given."""
        from forethought.agent.mpc import MPCAgent, model_frameskip
        from forethought.planning import make_planner

        frameskip = model_frameskip(model, int(action_space.shape[0]))
        proposal = None
        if self.proposal is not None:
            from forethought.policies import load_proposal

            proposal = load_proposal(self.proposal, model, device=device)  # refuses another model's proposal
            if proposal.horizon != self.horizon:
                raise ValueError(f"--proposal {self.proposal}: samples chunks of {proposal.horizon} model steps; pass "
                                 f"--horizon {proposal.horizon} (or train a proposal with --horizon {self.horizon})")
        planner = make_planner(self.planner, proposal=proposal, proposal_steps=self.proposal_steps,
                               **self.planner_settings(frameskip, samples, iterations))
        agent = MPCAgent(model, planner, action_space=action_space, device=device, horizon=self.horizon,
                         receding=self.receding, objective=objective if objective is not None else self.build_objective(model))
        if self.warm_start is not None:
            from forethought.policies.goal_policy import GoalPolicy
            from forethought.policies.imagination import ImaginationWarmStart

            policy = GoalPolicy.from_pretrained(_policy_dir(self.warm_start), device=device)
            agent.warm_start = ImaginationWarmStart(policy, model, policy_dir=self.warm_start)
        agent.decision_ms = self.decision_ms
        return agent


@dataclass(frozen=True)
class EvalConfig:
    """One `forethought eval` run: the model, the tasks, the protocol, and the report."""

    model: str = field(metadata={"help": "run folder (with model/ and run.json) or a model folder"})
    out: str = field(metadata={"help": "report folder to write"})
    env: str | None = field(default=None, metadata={"help": "environment id (default: the dataset's)"})
    env_kwargs: dict[str, Any] | None = field(default=None, metadata={
        "help": "JSON object of env kwargs (default: the dataset's, e.g. image_size)", "type": str})
    data: str | None = field(default=None, metadata={"help": "dataset folder (default: the one in the run's run.json)"})
    episodes: int = field(default=50, metadata={"help": "evaluation episodes"})
    goal_source: str = field(default="dataset", metadata={
        "help": "dataset: goal = the held-out episode's state --goal-offset steps later; env: random start and "
                "env-sampled goal", "choices": ("dataset", "env")})
    goal_offset: int = field(default=25, metadata={"help": "env steps from start to goal"})
    goal_split: str = field(default="held-out", metadata={
        "help": "with --goal-source dataset: draw tasks from the run's held-out episodes (ours), from its training "
                "episodes (stable-worldmodel / LeWM's PushT protocol), or from every episode of --data (all: a dataset "
                "collected for evaluation only, so that runs trained on different data share one task set)",
        "choices": ("held-out", "train", "all")})
    success: str = field(default="final", metadata={
        "help": "final: judged on the state after the last step (ours); any: latched, success at any step within "
                "the budget (stable-worldmodel / LeWM). Both are recorded per episode", "choices": ("final", "any")})
    skip_solved: bool = field(default=False, metadata={
        "help": "keep only tasks whose start does not already satisfy the env's success test against the goal "
                "(PushT: the block often does not move in 25 steps of data); counts go to report.json"})
    budget: int = field(default=50, metadata={"help": "env steps per episode"})
    batch: int = field(default=50, metadata={"help": "episodes planned together"})
    seed: int = field(default=0, metadata={"help": "seed of tasks, envs and planner"})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (default: cuda if available)"})
    sweep: bool = field(default=False, metadata={
        "help": "also sweep the planning budget (samples x iterations) and plot success against it"})
    sweep_pairs: str | None = field(default=None, metadata={
        "help": "samples x iterations pairs for --sweep, e.g. '16x1,32x3,64x5' (default: a 5-point ladder)"})
    gif_episodes: int = field(default=4, metadata={"help": "episodes shown in episodes.gif (0: none)"})
    baseline: bool = field(default=True, metadata={"help": "skip the random-policy baseline", "flag": "--no-baseline"})
    surprise: str = field(default="off", metadata={
        "help": "watch every model frame with the model's surprise calibration (forethought surprise-calibrate) and "
                "report the alarm rate; replan: an alarm also makes the agent plan again at once",
        "choices": ("off", "observe", "replan")})
    progress: bool = field(default=True, metadata={"help": "no progress bar", "flag": "--no-progress"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a non-empty --out folder as a whole (without it, eval refuses one)"})
    force: bool = field(default=False, metadata={
        "help": "run a model on an env with another id than the one it was trained on (spaces must still match); "
                "the warning goes into report.json and report.md"})
    mpc: MPCConfig = field(default_factory=MPCConfig, metadata={"cli": False})

    def __post_init__(self) -> None:
        for name in ("episodes", "budget", "batch", "goal_offset"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.gif_episodes < 0:
            raise ValueError(f"--gif-episodes must be >= 0, got {self.gif_episodes}")
        if isinstance(self.env_kwargs, str):
            object.__setattr__(self, "env_kwargs", parse_json_object(self.env_kwargs))
        if self.mpc.seed != self.seed:
            from dataclasses import replace

            object.__setattr__(self, "mpc", replace(self.mpc, seed=self.seed))


def _policy_dir(path: str) -> str:
    """A policy run folder (holding model/) or the policy folder itself."""
    from pathlib import Path

    return str(Path(path) / "model") if (Path(path) / "model" / "config.json").is_file() else path
