"""Management plan: course of withdrawal, ranked options, adjuncts, monitoring, resources."""

from withdrawal.plan.plan import AdjunctAdvice, Excluded, Option, Plan, build_plan
from withdrawal.plan.regimen import TaperDay, doses_timeline, tramadol_taper
from withdrawal.plan.stage import CourseStatus, course_status

__all__ = [
    "AdjunctAdvice",
    "CourseStatus",
    "Excluded",
    "Option",
    "Plan",
    "TaperDay",
    "build_plan",
    "course_status",
    "doses_timeline",
    "tramadol_taper",
]
