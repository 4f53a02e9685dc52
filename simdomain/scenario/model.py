"""Typed scenario: what a brand's private domain looks like and what it aims for.

Every rate is a probability per person per day unless its name says otherwise;
money is in yuan (``_cny``). Multipliers are relative to the base rates in
:class:`Lifecycle`.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from simdomain.scenario.capacity import memory_problem

STAGES = ("fan", "customer", "member", "koc")
"""Consumer stages in the order of the role upgrade."""

MAX_CNY = 1e12
"""Largest amount of money (spend, cost, budget, target): a trillion yuan."""
MAX_ORDER_CNY = 1e8
"""Largest mean order value."""
MIN_COST_PER_CONTACT_CNY = 1e-3
"""Cheapest contact: a tenth of a fen (an SMS costs a few fen)."""
MAX_FACTOR = 1e6
"""Largest multiplier, propensity, uplift, half-life or per-account rate."""
MAX_COUNT = 10**10
"""Largest count of people or contacts: more than the world's population."""
FIRST_DATE, LAST_DATE = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
"""The supported window of dates."""
MAX_NAMED = 200
"""Most segments, and most channels: the engine's rate tables grow with their product."""

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, le=MAX_FACTOR)]
Positive = Annotated[float, Field(gt=0.0, le=MAX_FACTOR)]
Money = Annotated[float, Field(ge=0.0, le=MAX_CNY)]
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
Stage = Literal["fan", "customer", "member", "koc"]

RESERVED_SOURCES = ("initial", "organic", "referral")
"""Source labels of people not brought by a channel."""

_SHARE_TOLERANCE = 1e-6


class Strict(BaseModel):
    """Base of all scenario models: unknown keys are refused, values are checked, and
    every number must be finite (``.inf`` and ``.nan`` are refused in any float field)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class FieldError(ValueError):
    """A cross-field problem located at ``loc`` below the model that raised it."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _check_shares(shares: dict[str, float], what: str, loc: tuple[str | int, ...] = ()) -> None:
    total = sum(shares.values())
    if shares and abs(total - 1.0) > _SHARE_TOLERANCE:
        raise FieldError(loc, f"{what} must sum to 1, got {total:g}")


class InitialPool(Strict):
    """People already in the private domain on the start date, per stage.

    Ignored when the simulation is given the people themselves (a twin's population,
    :class:`simdomain.sim.population.InitialPeople`), who replace these counts.
    """

    fan: Count = 0
    customer: Count = 0
    member: Count = 0
    koc: Count = 0

    @property
    def total(self) -> int:
        return self.fan + self.customer + self.member + self.koc


class Propensities(Strict):
    """Multipliers on the base lifecycle rates (1 = the base rate).

    A segment has them, and so has a channel (for the people it brings); a person's rate
    is the base rate times their segment's and their source channel's multipliers. On a
    channel, ``add`` multiplies its add rate per contact on top of the audience's.
    """

    add: NonNegative = Field(1.0, description="on a channel's add rate per contact")
    first_order: NonNegative = 1.0
    repeat_order: NonNegative = 1.0
    join: NonNegative = 1.0
    koc: NonNegative = 1.0
    dormancy: NonNegative = 1.0
    deletion: NonNegative = 1.0
    referral: NonNegative = Field(1.0, description="on word of mouth by this segment")


class Segment(Strict):
    """A group of consumers sharing order value and propensities."""

    share: Probability = Field(description="share of the initial pool")
    order_value_cny: Annotated[float, Field(gt=0.0, le=MAX_ORDER_CNY)] = Field(
        description="mean order value")
    order_value_cv: NonNegative = Field(
        0.5, description="coefficient of variation of the (lognormal) order value"
    )
    propensity: Propensities = Propensities()


class Staff(Strict):
    """Staff accounts that take a channel's adds (a channel QR code spreads over them)."""

    accounts: Count
    adds_per_account_per_day: Positive = 100.0
    monthly_cost_per_account_cny: Money = 0.0

    @property
    def daily_capacity(self) -> int:
        return int(self.accounts * self.adds_per_account_per_day)


class Channel(Strict):
    """An acquisition channel: spend buys contacts, a funnel turns contacts into adds."""

    description: str = ""
    monthly_spend_cny: Money | list[Money] = Field(
        description="spend per month, or one value per month of the horizon"
    )
    cost_per_contact_cny: Annotated[float, Field(ge=MIN_COST_PER_CONTACT_CNY, le=MAX_CNY)]
    funnel: dict[str, Probability] = Field(
        min_length=1, description="pass rate of each step from contact to add request"
    )
    carrier_add_rate: Probability = Field(
        1.0, description="share of add requests the carrier account accepts"
    )
    max_contacts_per_month: Count | None = Field(
        None, description="contacts available per month (parcels, phone list); none = unlimited"
    )
    saturation_contacts: Annotated[float, Field(gt=0.0, le=MAX_COUNT)] | None = Field(
        None, description="diminishing returns: effective contacts are S(1 - exp(-c/S))"
    )
    carryover: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        0.0, description="share of a month's contacts still working the next month (geometric "
                         "carry-over): effective contacts e_m = c_m + carryover * e_(m-1)")
    carried_contacts: Annotated[float, Field(ge=0.0, le=MAX_COUNT)] = Field(
        0.0, description="effective contacts e_(-1) carried into the first month from before "
                         "the start (a twin's history)")
    fixed_cost_cny: Money = Field(0.0, description="per month in which the channel spends")
    min_spend_cny: Money = Field(
        0.0, description="planner: least monthly spend in a month the channel is on"
    )
    max_spend_cny: Money | None = Field(
        None, description="planner: most monthly spend; none = up to the contact capacity"
    )
    audience: dict[str, Probability] | None = Field(
        None, description="segment mix of the contacts; default: the segment shares"
    )
    staff: Staff | None = None
    deletion_multiplier: NonNegative = Field(
        1.0, description="people added here delete at this multiple of the base rate"
    )
    free_adds_per_month: NonNegative = Field(
        0.0, description="adds a month that come without spend (store posters, codes already "
                         "out): Poisson, spread evenly over the month, within staff capacity"
    )
    propensity: Propensities = Field(
        Propensities(),
        description="multipliers on the rates of the people added here (times their "
                    "segment's; deletion also times deletion_multiplier)",
    )

    @property
    def add_rate(self) -> float:
        """Probability that a contact becomes an add (funnel times carrier)."""
        rate = self.carrier_add_rate
        for step in self.funnel.values():
            rate *= step
        return rate

    def spend_in_month(self, month: int) -> float:
        """Planned spend in month ``month`` (0 = the start date's month)."""
        spend = self.monthly_spend_cny
        return spend[month] if isinstance(spend, list) else spend

    def contacts(self, spend_cny: float) -> float:
        """Contacts a month's spend buys, up to the monthly capacity."""
        contacts = spend_cny / self.cost_per_contact_cny
        cap = self.max_contacts_per_month
        return contacts if cap is None else min(contacts, float(cap))

    def effective_contacts(self, contacts: float) -> float:
        """Contacts after diminishing returns: ``S (1 - exp(-c / S))``."""
        scale = self.saturation_contacts
        return contacts if scale is None else -scale * math.expm1(-contacts / scale)

    def working_contacts(self, months: int) -> list[float]:
        """Contacts at work in each month of the plan, before diminishing returns.

        ``e_m = c_m + carryover * e_(m-1)`` with ``c_m`` the contacts month ``m``'s planned
        spend buys and ``e_(-1) = carried_contacts``; with no carry-over, ``e_m = c_m``.
        """
        out, previous = [], self.carried_contacts
        for m in range(months):
            previous = self.contacts(self.spend_in_month(m)) + self.carryover * previous
            out.append(previous)
        return out

    @model_validator(mode="after")
    def _audience_sums_to_one(self) -> Channel:
        if self.audience is not None:
            _check_shares(self.audience, "audience shares", ("audience",))
        if self.max_spend_cny is not None and self.min_spend_cny > self.max_spend_cny:
            raise FieldError(("min_spend_cny",), f"{self.min_spend_cny:g} is above "
                             f"max_spend_cny {self.max_spend_cny:g}")
        return self


class Content(Strict):
    """One kind of post: its share of the posts and its effect on whoever sees it."""

    share: Probability
    uplift: NonNegative = Field(0.0, description="added to engagement per view")
    fatigue: float = Field(0.0, ge=-1.0, le=MAX_FACTOR,
                           description="added to fatigue per view; < 0 soothes")


class Targeting(Strict):
    """Send 1:1 messages to the people a fitted model ranks highest.

    On each 1:1 day, people in the policy's ``stages`` whose churn risk (deleting within
    30 days) is above ``max_churn_risk`` are skipped; the rest are ranked by ``rank_by``
    (``join``: joining the membership within 30 days, 0 for members and KOCs; ``order``:
    ordering within 30 days) and the top ``top_share`` of everyone in those stages is
    messaged. The model folder is one written by ``simdomain fit SCENARIO`` (a pickle:
    only use folders you trust); a relative path is read from the working directory.
    """

    model: str = Field(description="folder written by `simdomain fit` on a scenario")
    top_share: Probability = Field(0.3, description="share of the stages' people messaged")
    max_churn_risk: Probability = Field(1.0, description="skip people whose churn risk is above")
    rank_by: Literal["join", "order"] = "join"
    estimator: Literal["gbm", "logistic"] = "gbm"


class OneToOne(Strict):
    """1:1 messages (customer SOP): the strongest touch and the most complaints."""

    per_week: Annotated[int, Field(ge=0, le=7)] = 2
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(
        None, description="days of the week they go out (Monday = 0); default: spread"
    )
    reach: Probability = Field(1.0, description="share of eligible people messaged each time")
    stages: list[Stage] = list(STAGES)
    uplift: NonNegative = 0.0
    fatigue: NonNegative = 0.0
    targeting: Targeting | None = Field(
        None, description="message the people a fitted model ranks highest; none = uniform"
    )

    @model_validator(mode="after")
    def _weekdays_match(self) -> OneToOne:
        if self.weekdays is not None:
            if len(set(self.weekdays)) != len(self.weekdays):
                raise FieldError(("weekdays",), f"repeats a day: {self.weekdays}")
            if len(self.weekdays) != self.per_week:
                raise FieldError(
                    ("weekdays",),
                    f"lists {len(self.weekdays)} days but per_week is {self.per_week}"
                )
        return self

    @property
    def schedule(self) -> tuple[int, ...]:
        """Weekdays (Monday = 0) on which messages go out."""
        if self.weekdays is not None:
            return tuple(sorted(self.weekdays))
        return tuple(i * 7 // self.per_week for i in range(self.per_week))


class Posts(Strict):
    """Scheduled posts (group SOP or moments) with their content mix."""

    posts_per_day: Annotated[int, Field(ge=0, le=24)] = 0
    view_rate: Probability = Field(0.2, description="chance a person sees a given post")
    content: dict[str, Content] = {}

    @model_validator(mode="after")
    def _mix_sums_to_one(self) -> Posts:
        if self.posts_per_day > 0 and not self.content:
            raise FieldError(("content",), "posts_per_day > 0 needs a content mix")
        _check_shares({k: c.share for k, c in self.content.items()}, "content shares", ("content",))
        return self

    @property
    def uplift_per_view(self) -> float:
        return sum(c.share * c.uplift for c in self.content.values())

    @property
    def fatigue_per_view(self) -> float:
        return sum(c.share * c.fatigue for c in self.content.values())


class GroupPosts(Posts):
    share_in_groups: Probability = Field(0.5, description="share of people who join a group")


class TouchPolicy(Strict):
    """How often people are touched, and how touches act on them.

    Each view adds its content's ``uplift`` to a person's engagement and its ``fatigue``
    to their fatigue; both decay with their half-lives. Conversion rates are multiplied
    by ``1 + engagement`` and deletion by
    ``1 + fatigue_sensitivity * max(0, fatigue - fatigue_tolerance)``.
    """

    one_to_one: OneToOne = OneToOne()
    group: GroupPosts = GroupPosts()
    moments: Posts = Posts()
    engagement_half_life_days: Positive = 7.0
    fatigue_half_life_days: Positive = 14.0
    fatigue_tolerance: NonNegative = 0.0
    fatigue_sensitivity: NonNegative = 0.0


class Heterogeneity(Strict):
    """Rates that differ between people of the same segment and source.

    Each shape given draws, for every person when they join, a multiplier from
    ``Gamma(shape, scale=1/shape)`` (mean 1, variance ``1/shape``) that stays with them;
    none leaves everyone at 1. With ``order_shape = r`` a segment's repeat order rate
    ``lambda`` becomes ``Gamma(r, r/lambda)`` across people; with ``dormancy_shape = s``
    and no waking (``wake = 0``, ``dormant_multiplier = 0``) the dropout is
    ``Gamma(s, s/dormancy)``: together, the Pareto/NBD model in daily steps. A gamma
    multiplier on deletion makes the hazard fall with tenure (a Lomax survival), as the
    likeliest to delete leave first.
    """

    order_shape: Positive | None = Field(None, description="gamma shape of the repeat order "
                                                           "multiplier")
    dormancy_shape: Positive | None = Field(None, description="gamma shape of the multiplier "
                                                              "on active -> dormant")
    deletion_shape: Positive | None = Field(None, description="gamma shape of the deletion "
                                                              "multiplier")


class Lifecycle(Strict):
    """Base daily transition rates; a segment's and a channel's propensities multiply
    them, and so do a person's own multipliers when ``heterogeneity`` is set."""

    first_order: Probability = Field(description="fan -> customer")
    new_user_days: Count = Field(3, description="days after the add with the new-user push")
    new_user_multiplier: NonNegative = Field(1.0, description="on first_order during them")
    repeat_order: Probability = Field(description="orders by customers, members and KOCs")
    member_order_multiplier: NonNegative = Field(1.0, description="on repeat_order for members")
    join: Probability = Field(description="customer -> member")
    koc: Probability = Field(description="member -> KOC")
    dormancy: Probability = Field(0.0, description="active -> dormant")
    dormancy_stages: list[Stage] = Field(
        list(STAGES), description="stages whose people can go dormant (a twin's dropout "
                                  "starts at the first order, as in the Pareto/NBD)")
    wake: Probability = Field(0.0, description="dormant -> active")
    dormant_multiplier: Probability = Field(
        0.1, description="on orders, upgrades and word of mouth while dormant"
    )
    deletion: dict[Stage, Probability] = Field(description="people deleting the brand, by stage")
    heterogeneity: Heterogeneity | None = Field(
        None, description="per-person gamma multipliers on repeat orders, dormancy and "
                          "deletion; none = everyone at the segment's rates"
    )

    @field_validator("deletion")
    @classmethod
    def _all_stages(cls, value: dict[str, float]) -> dict[str, float]:
        missing = [s for s in STAGES if s not in value]
        if missing:
            raise ValueError(f"needs a rate for every stage, missing {missing}")
        return value


class RewardTier(Strict):
    invites: Annotated[int, Field(gt=0, le=MAX_COUNT)]
    gift_cny: Money


class Referral(Strict):
    """Word of mouth over a finite addressable market (Bass diffusion per person).

    Each day, each of the market's remaining people joins with probability
    ``external_rate + W / addressable_market``, where ``W`` sums ``word_of_mouth`` over
    the people in the pool (by stage, times their segment's referral propensity).
    """

    addressable_market: Count
    external_rate: Probability = 0.0
    word_of_mouth: dict[Stage, NonNegative] = {}
    audience: dict[str, Probability] | None = None
    gift_per_invitee_cny: Money = Field(0.0, description="new-user gift per referred add")
    reward_tiers: list[RewardTier] = Field([], description="gifts for referrers at invite counts")
    fraud_share: Probability = Field(
        0.0, description="share of referred adds that are fake: they never buy, upgrade, "
                         "refer or go dormant, and delete at the base fan rate"
    )

    @model_validator(mode="after")
    def _check(self) -> Referral:
        if self.audience is not None:
            _check_shares(self.audience, "audience shares", ("audience",))
        counts = [t.invites for t in self.reward_tiers]
        if counts != sorted(set(counts)):
            raise FieldError(("reward_tiers",), f"must have increasing invites, got {counts}")
        return self


class CampaignMultipliers(Strict):
    adds: NonNegative = 1.0
    first_order: NonNegative = 1.0
    repeat_order: NonNegative = 1.0
    join: NonNegative = 1.0
    koc: NonNegative = 1.0
    wake: NonNegative = 1.0
    deletion: NonNegative = 1.0
    referral: NonNegative = 1.0


class Campaign(Strict):
    """A window in which rates are multiplied (a big sale, a launch, a holiday)."""

    name: str
    start: dt.date
    days: Annotated[int, Field(gt=0, le=3660)]
    cost_cny: Money = 0.0
    multipliers: CampaignMultipliers = CampaignMultipliers()
    channels: list[str] | None = Field(None, description="channels whose adds rise; all if none")


class PoolTarget(Strict):
    date: dt.date
    size: Count


class GmvTarget(Strict):
    by: dt.date
    total_cny: Money


class Targets(Strict):
    """North-star targets; any may be left out."""

    monthly_new_adds: Count | None = None
    monthly_new_members: Count | None = None
    pool_size: list[PoolTarget] = []
    gmv: GmvTarget | None = None
    max_monthly_deletion_rate: Probability | None = None


class Budget(Strict):
    monthly_cny: Money | None = None
    total_cny: Money | None = None


class PopulationFiles(Strict):
    """A twin's real people and parameter draws (written by ``simdomain calibrate``).

    Relative paths are read from the scenario file's folder. The people replace
    ``initial_pool``; each replication starts them from their own posterior latent state
    under a parameter set drawn from ``parameters`` (see ``simdomain run --parameters``).
    """

    people: str = Field(description="Parquet file of the people known on the start date")
    parameters: str | None = Field(None, description="Parquet file of parameter draws")
    reps_per_draw: Annotated[int, Field(ge=1, le=100)] = Field(
        2, description="replications sharing one parameter draw (to split the spread into "
                       "parameter uncertainty and chance)")


class Scenario(Strict):
    """A brand's private domain: channels, touches, lifecycle, referral, targets."""

    schema_version: Literal[1] = 1
    name: str
    description: str = ""
    start_date: dt.date
    horizon_days: Annotated[int, Field(gt=0, le=3660)]
    initial_pool: InitialPool = InitialPool()
    segments: dict[str, Segment] = Field(min_length=1, max_length=MAX_NAMED)
    channels: dict[str, Channel] = Field({}, max_length=MAX_NAMED)
    touch_policy: TouchPolicy = TouchPolicy()
    lifecycle: Lifecycle
    referral: Referral | None = None
    campaigns: list[Campaign] = []
    targets: Targets = Targets()
    budget: Budget = Budget()
    population: PopulationFiles | None = None

    @property
    def end_date(self) -> dt.date:
        """The last simulated day."""
        return self.start_date + dt.timedelta(days=self.horizon_days - 1)

    @property
    def months(self) -> int:
        """Calendar months the horizon touches."""
        end = self.end_date
        return (end.year - self.start_date.year) * 12 + end.month - self.start_date.month + 1

    def audience(self, source: str) -> dict[str, float]:
        """Segment mix of a channel's contacts, of referred people (``"referral"``), or
        of the initial pool (any other name)."""
        if source in self.channels:
            mix = self.channels[source].audience
        else:
            mix = self.referral.audience if source == "referral" and self.referral else None
        return mix if mix is not None else {k: s.share for k, s in self.segments.items()}

    def expected_monthly_adds(self, channel: str, spend_cny: float,
                              previous_contacts: float = 0.0) -> float:
        """Mean adds a month's spend on ``channel`` brings, before staff capacity.

        The add rate per effective contact is the funnel times the carrier's add rate
        times the audience's mean ``add`` propensity times the channel's own.
        ``previous_contacts`` are the contacts at work the month before (``e_(m-1)``, see
        :meth:`Channel.working_contacts`), of which ``carryover`` still work this month.
        """
        ch = self.channels[channel]
        mix = self.audience(channel)
        propensity = sum(share * self.segments[k].propensity.add for k, share in mix.items())
        working = ch.contacts(spend_cny) + ch.carryover * previous_contacts
        return ch.add_rate * propensity * ch.propensity.add * ch.effective_contacts(working)

    def expected_adds_by_month(self, channel: str) -> list[float]:
        """Mean adds the plan's spend on ``channel`` brings in each month of the horizon
        (full calendar months, before staff capacity and free adds), carry-over included."""
        ch = self.channels[channel]
        working = ch.working_contacts(self.months)
        return [self.expected_monthly_adds(channel, ch.spend_in_month(m),
                                           working[m - 1] if m else ch.carried_contacts)
                for m in range(self.months)]

    @field_validator("start_date")
    @classmethod
    def _supported_date(cls, value: dt.date) -> dt.date:
        if not FIRST_DATE <= value <= LAST_DATE:
            raise ValueError(f"{value} is outside the supported window {FIRST_DATE}..{LAST_DATE}")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        _check_shares({k: s.share for k, s in self.segments.items()}, "segment shares",
                      ("segments",))
        for name in self.channels:
            if name in RESERVED_SOURCES:
                raise FieldError(("channels", name), f"the name {name!r} is reserved")
        mixes = [(("channels", n, "audience"), c.audience) for n, c in self.channels.items()]
        if self.referral is not None:
            mixes.append((("referral", "audience"), self.referral.audience))
        for loc, mix in mixes:
            unknown = sorted(set(mix or {}) - set(self.segments))
            if unknown:
                raise FieldError(loc, f"unknown segments {unknown}; known: {sorted(self.segments)}")
        for name, channel in self.channels.items():
            spend = channel.monthly_spend_cny
            if isinstance(spend, list) and len(spend) != self.months:
                raise FieldError(
                    ("channels", name, "monthly_spend_cny"),
                    f"lists {len(spend)} months but the horizon spans {self.months}",
                )
        for i, campaign in enumerate(self.campaigns):
            unknown = sorted(set(campaign.channels or ()) - set(self.channels))
            if unknown:
                raise FieldError(("campaigns", i, "channels"),
                                 f"unknown channels {unknown}; known: {sorted(self.channels)}")
            self._within_horizon(campaign.start, ("campaigns", i, "start"))
        for i, pool in enumerate(self.targets.pool_size):
            self._within_horizon(pool.date, ("targets", "pool_size", i, "date"))
        if self.targets.gmv is not None:
            self._within_horizon(self.targets.gmv.by, ("targets", "gmv", "by"))
        if self.end_date > LAST_DATE:
            raise FieldError(("horizon_days",), f"ends on {self.end_date}, after the supported "
                                                f"window {FIRST_DATE}..{LAST_DATE}")
        memory = memory_problem(self)
        if memory:
            raise FieldError((), memory)
        return self

    def _within_horizon(self, date: dt.date, loc: tuple[str | int, ...]) -> None:
        if not self.start_date <= date <= self.end_date:
            raise FieldError(loc, f"{date} is outside the horizon {self.start_date}..{self.end_date}")
