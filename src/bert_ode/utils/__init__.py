"""What the pretraining, fine-tuning and study packages share, and nothing of any of them: the one config
mechanism (``config_io``), typed records (``records``), device and precision (``device``), downstream
metrics and statistics over seeds (``metrics``), experiment trackers (``trackers``) and Markdown tables
(``markdown``). Import from the module that defines a name."""
