"""One module per search strategy, each exposing `async def run(ctx, prompt_ids, config)`."""
