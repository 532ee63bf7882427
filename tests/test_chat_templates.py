"""encode_chat on the chat templates of the paper's models (short faithful copies of how each
places the system prompt), set on the tiny tokenizer: every message's span holds its content."""

from __future__ import annotations

import copy
import itertools

import pytest

from interp.chat import ChatTemplateError, Message, encode_chat

# meta-llama/Llama-3.1-8B-Instruct (tools branches left out): system first, after a date header;
# every content trimmed.
LLAMA31 = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content']|trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

# Qwen/Qwen2.5-32B-Instruct (tools branches left out): ChatML, a default system prompt.
QWEN25 = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. "
    "You are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if (message.role == 'user') or (message.role == 'system' and not loop.first)"
    " or (message.role == 'assistant') %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def _mistral_v3(inst: str) -> str:
    """mistralai/Mistral-7B-Instruct-v0.3 (``inst="[INST] "``) and Mistral-Small-Instruct-2409
    (``"[INST]"``): the system prompt goes only with the LAST message when it is a user turn."""
    return (
        "{%- if messages[0]['role'] == 'system' %}"
        "{%- set system_message = messages[0]['content'] %}{%- set loop_messages = messages[1:] %}"
        "{%- else %}{%- set loop_messages = messages %}{%- endif %}"
        "{{- bos_token }}"
        "{%- for message in loop_messages %}"
        "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{- raise_exception('After the optional system message, conversation roles must "
        "alternate user/assistant/user/assistant/...') }}{%- endif %}"
        "{%- if message['role'] == 'user' %}"
        "{%- if loop.last and system_message is defined %}"
        f"{{{{- '{inst}' + system_message + '\\n\\n' + message['content'] + '[/INST]' }}}}"
        f"{{%- else %}}{{{{- '{inst}' + message['content'] + '[/INST]' }}}}{{%- endif %}}"
        "{%- elif message['role'] == 'assistant' %}"
        "{{- ' ' + message['content'] + eos_token }}"
        "{%- endif %}{%- endfor %}"
    )


MISTRAL_V03 = _mistral_v3("[INST] ")
MISTRAL_SMALL_2409 = _mistral_v3("[INST]")

# google/gemma-2-9b-it: no system role at all.
GEMMA2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)

# google/gemma-3-*-it: the system prompt is prefixed to the first user turn.
GEMMA3 = (
    "{{ bos_token }}"
    "{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}"
    "{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}"
    "{%- endif -%}"
    "{%- for message in loop_messages -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
    "{{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') }}"
    "{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{'<start_of_turn>model\\n'}}{%- endif -%}"
)

# A template that never renders a system prompt, whatever the turn order.
DROPS_SYSTEM = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'] + ': ' + message['content'] + '\\n' }}{% endif %}{% endfor %}"
)

TEMPLATES = {
    "llama-3.1": LLAMA31,
    "qwen2.5": QWEN25,
    "mistral-7b-v0.3": MISTRAL_V03,
    "mistral-small-2409": MISTRAL_SMALL_2409,
    "gemma-2": GEMMA2,
    "gemma-3": GEMMA3,
}

SYSTEM = "You are a warm and caring assistant."
CONVERSATIONS = {
    "system-user": (
        [Message("system", SYSTEM), Message("user", "What is the capital of France?")],
        True,
    ),
    "system-user-assistant": (
        [
            Message("system", SYSTEM),
            Message("user", "What is the capital of France?"),
            Message("assistant", "The capital of France is Paris."),
        ],
        False,
    ),
    "multi-turn": (
        [
            Message("system", SYSTEM),
            Message("user", "I think the answer is London."),
            Message("assistant", "It is Paris."),
            Message("user", "Are you sure?"),
        ],
        True,
    ),
    "multi-turn-assistant-last": (
        [
            Message("system", SYSTEM),
            Message("user", "I think the answer is London."),
            Message("assistant", "It is Paris."),
            Message("user", "Are you sure?"),
            Message("assistant", "Yes, I am sure."),
        ],
        False,
    ),
    "no-system": ([Message("user", "Is it true?"), Message("assistant", "No.")], False),
}


@pytest.fixture(scope="module")
def base_tokenizer():
    from interp.tiny_models import tiny_tokenizer

    return tiny_tokenizer()


def _with_template(tok, template: str):
    tok = copy.deepcopy(tok)
    tok.chat_template = template
    return tok


@pytest.mark.parametrize("conv", sorted(CONVERSATIONS))
@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_message_is_located_in_its_tokens(base_tokenizer, name, conv):
    tok = _with_template(base_tokenizer, TEMPLATES[name])
    messages, gen = CONVERSATIONS[conv]
    enc = encode_chat(tok, messages, add_generation_prompt=gen)
    assert [s.role for s in enc.spans] == [m.role for m in messages]
    for m, span in zip(messages, enc.spans, strict=True):
        assert enc.text[span.char_start : span.char_end] == m.content.strip()
        decoded = tok.decode(enc.input_ids[span.tok_start : span.tok_end])
        assert m.content.strip() in decoded
    # spans never overlap
    ordered = sorted((s.char_start, s.char_end) for s in enc.spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ordered))
    has_system = messages[0].role == "system"
    assert (enc.system_placement != "none") == has_system
    if has_system:
        assert enc.text.count(SYSTEM) == 1


def test_where_each_template_puts_the_system_prompt(base_tokenizer):
    def placement(name: str, conv: str) -> str:
        messages, gen = CONVERSATIONS[conv]
        enc = encode_chat(_with_template(base_tokenizer, TEMPLATES[name]), messages, gen)
        system, users = enc.spans[0], [s for s in enc.spans if s.role == "user"]
        where = "before-first-user" if system.char_end <= users[0].char_start else "later"
        return f"{enc.system_placement}/{where}"

    for name in ("llama-3.1", "qwen2.5", "gemma-3"):
        assert placement(name, "multi-turn") == "native/before-first-user"
    # Mistral: with the last user turn, natively when it ends the conversation
    for name in ("mistral-7b-v0.3", "mistral-small-2409"):
        assert placement(name, "multi-turn") == "native/later"
        assert placement(name, "system-user-assistant") == "merged-last-user/before-first-user"
        assert placement(name, "multi-turn-assistant-last") == "merged-last-user/later"
    assert placement("gemma-2", "multi-turn") == "merged-first-user/before-first-user"


def test_mistral_merge_matches_what_the_model_saw_when_it_answered(base_tokenizer):
    tok = _with_template(base_tokenizer, MISTRAL_V03)
    messages, _ = CONVERSATIONS["system-user-assistant"]
    prompt = encode_chat(tok, messages[:2], add_generation_prompt=True).text
    full = encode_chat(tok, messages, add_generation_prompt=False).text
    assert full.startswith(prompt)


def test_a_template_that_drops_the_system_prompt_gets_it_merged_or_is_named(base_tokenizer):
    tok = _with_template(base_tokenizer, DROPS_SYSTEM)
    enc = encode_chat(tok, CONVERSATIONS["system-user"][0])
    assert enc.system_placement == "merged-last-user"
    assert enc.text.startswith(f"user: {SYSTEM}\n\nWhat is the capital")
    # a template that also rewrites user content cannot carry the system prompt at all
    shouting = DROPS_SYSTEM.replace("message['content']", "message['content'] | upper")
    tok = _with_template(base_tokenizer, shouting)
    with pytest.raises(ChatTemplateError, match=r"chat template of .*interp-tiny-bpe.*dropped"):
        encode_chat(tok, CONVERSATIONS["system-user"][0])


def test_a_refused_conversation_is_a_chat_template_error(base_tokenizer):
    tok = _with_template(base_tokenizer, GEMMA2)
    bad = [Message("user", "a"), Message("user", "b")]
    with pytest.raises(ChatTemplateError, match=r"refused the conversation.*alternate"):
        encode_chat(tok, bad)


def test_user_content_inside_the_system_prompt_is_not_mistaken_for_it(base_tokenizer):
    tok = _with_template(base_tokenizer, MISTRAL_V03)
    messages = [
        Message("system", "Be kind. Paris"),
        Message("user", "Paris"),
        Message("assistant", "Yes."),
        Message("user", "kind"),
    ]
    enc = encode_chat(tok, messages)
    user2 = enc.spans[3]
    system = enc.spans[0]
    assert enc.text[system.char_start : system.char_end] == "Be kind. Paris"
    assert user2.char_start >= system.char_end  # "kind" is the last user turn, not the system's
