"""netdoctor inside the trainers people use: Lightning and the Hugging Face Trainer.

Import the one you need (``netdoctor.integrations.lightning``, ``netdoctor.integrations.hf``);
this package imports nothing itself, so that having netdoctor installed costs a Lightning or
Transformers user nothing until they ask for it. A plain ``accelerate`` loop needs no
integration: ``netdoctor.watch(model, optimizer)`` takes its prepared model and optimizer.
"""
