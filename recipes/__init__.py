"""Training recipes (installed as `zoo.recipes`): one module per technique, run by `zoo train NAME`.

Every module here is imported when a recipe is looked up, and registers itself with
`@zoo.training.register_recipe`.
"""
