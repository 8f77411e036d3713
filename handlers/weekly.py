"""`/ainews weekly [YYYY-Www]`: the stored weekly report (built once per week, never per
request), shown to the caller."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.reply import Code, Reply, line
from jobs.weekly import WeeklyConfig, last_complete_week, stored_weekly
from jobs.weekly_model import IsoWeek


async def weekly_reply(ctx: HandlerContext, argument: str, config: WeeklyConfig) -> Reply:
    newest = last_complete_week(ctx.now, config.tz)
    try:
        week = IsoWeek.parse(argument) if argument else newest
    except ValueError:
        return Reply(
            title=f"週「{argument}」は YYYY-Www（ISO週）で指定してください",
            lines=(line("例: ", Code(f"/ainews weekly {newest}")),),
            error=True,
        )
    report = await stored_weekly(
        db=ctx.db, week=week, config=config, taxonomy=ctx.taxonomy, llm=ctx.llm, now=ctx.now
    )
    if report is None:
        return Reply(
            title=f"{week} はまだ終わっていません",
            text=f"週次レポートは週が終わってから作られます。最新は {newest} です。",
            lines=(line("例: ", Code(f"/ainews weekly {newest}")),),
        )
    if not report.items:
        return Reply(
            title=f"{week}（{report.start}〜{report.end}）に掲載できる記事はありませんでした"
        )
    return Reply(title=f"AI・機械学習 Weekly Report {week}", weekly=report)
