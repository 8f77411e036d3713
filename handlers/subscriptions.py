"""`subscribe`, `unsubscribe`, `subscriptions`: per-user categories delivered by DM."""

from __future__ import annotations

from handlers.context import HandlerContext
from handlers.reply import Code, Reply, line
from storage.subscriptions import subscribe, subscriptions_of, unsubscribe


def _resolve(ctx: HandlerContext, names: list[str]) -> tuple[list[str], list[str]]:
    known, unknown = [], []
    for name in names:
        category = ctx.taxonomy.resolve(name)
        (known.append(category.slug) if category else unknown.append(name))
    return known, unknown


def _labels(ctx: HandlerContext, slugs: list[str]) -> str:
    return "、".join(ctx.taxonomy.get(s).label for s in slugs if s in ctx.taxonomy.slugs)


def _unknown(ctx: HandlerContext, unknown: list[str], usage: str) -> Reply:
    choices: list[str | Code] = ["使えるもの: "]
    for i, category in enumerate(ctx.taxonomy.categories):
        choices += [", "] if i else []
        choices += [Code(category.slug), f"（{category.label}）"]
    title = (
        f"カテゴリー「{'、'.join(unknown)}」はありません" if unknown else "カテゴリーがありません"
    )
    return Reply(title=title, lines=(line("使い方: ", Code(usage)), line(*choices)), error=True)


async def subscribe_to(ctx: HandlerContext, names: list[str]) -> Reply:
    if ctx.user_id is None:
        return Reply(title="購読はチャットから使えます", error=True)
    known, unknown = _resolve(ctx, names)
    if unknown or not known:
        return _unknown(ctx, unknown, "/ainews subscribe <カテゴリー…>")
    await ctx.db.run(subscribe, platform=ctx.platform, user_id=ctx.user_id, categories=known)
    return Reply(
        title=f"購読しました: {_labels(ctx, known)}", text="新着はDMでまとめてお届けします。"
    )


async def unsubscribe_from(ctx: HandlerContext, names: list[str]) -> Reply:
    if ctx.user_id is None:
        return Reply(title="購読はチャットから使えます", error=True)
    if [n.lower() for n in names] == ["all"]:
        removed = await ctx.db.run(
            unsubscribe, platform=ctx.platform, user_id=ctx.user_id, categories=None
        )
        return Reply(title=f"すべての購読をやめました（{removed}件）")
    known, unknown = _resolve(ctx, names)
    if unknown or not known:
        return _unknown(ctx, unknown, "/ainews unsubscribe <カテゴリー…|all>")
    await ctx.db.run(unsubscribe, platform=ctx.platform, user_id=ctx.user_id, categories=known)
    return Reply(title=f"購読をやめました: {_labels(ctx, known)}")


async def list_subscriptions(ctx: HandlerContext) -> Reply:
    if ctx.user_id is None:
        return Reply(title="購読はチャットから使えます", error=True)
    slugs = await ctx.db.run(subscriptions_of, platform=ctx.platform, user_id=ctx.user_id)
    if not slugs:
        return Reply(
            title="購読中のカテゴリーはありません",
            lines=(line(Code("/ainews subscribe policy"), " のように登録できます。"),),
        )
    ordered = sorted(slugs, key=ctx.taxonomy.order)
    return Reply(title="購読中のカテゴリー", text=_labels(ctx, ordered))
