"""Each door's one mapping of bot.errors: a chat sentence, an HTTP status, an exit status."""

import json

import pytest

from bot.adapters.web import refusal_response
from bot.commands._commands import refusal_reply
from bot.errors import (
    BotError,
    Closed,
    Mistake,
    NotAllowed,
    NotFound,
    SlowDown,
    TooLarge,
    Unauthorized,
    UnsupportedForm,
)
from engine.errors import InvalidRequest


@pytest.mark.parametrize(("refusal", "status"), [
    (Mistake("say it again"), 400), (InvalidRequest("there is no key H"), 400),
    (TooLarge("too big"), 413), (UnsupportedForm("send a form"), 415),
    (Unauthorized("private"), 401), (NotAllowed("not yours"), 403),
    (NotFound("nothing here"), 404), (Closed("it closed"), 409),
    (SlowDown("busy right now", 7), 429)])
def test_the_web_answers_each_kind_with_its_status(refusal: BotError | InvalidRequest,
                                                    status: int) -> None:
    response = refusal_response(refusal)
    assert response.status == status
    assert response.text is not None
    said = json.loads(response.text)["error"]
    assert said[0].isupper() and said.endswith(".")
    assert (response.headers.get("Retry-After") == "7") == isinstance(refusal, SlowDown)
    assert ("WWW-Authenticate" in response.headers) == isinstance(refusal, Unauthorized)


def test_a_chat_says_a_refusal_as_a_sentence() -> None:
    assert refusal_reply(InvalidRequest("there is no key H")).text == "There is no key H."
    busy = refusal_reply(SlowDown("I am busy right now: try again in 10 s", 10))
    assert busy.text == "I am busy right now: try again in 10 s." and busy.retry_after_s == 10
    assert refusal_reply(Mistake("Send /help.")).retry_after_s is None


def test_the_command_line_exits_2_for_a_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    assert main(["piano", "/no/such/clip.ogg", "-o", "out.mid"]) == 2
    assert "no such file" in capsys.readouterr().err
