// A `web` function: POST /fn/exec/post_event with {channel, message}.
// It stores the message in events_774_ (everyone signed in reads, its author writes) and
// publishes it to the channel as an `event` message. It runs as the user who called it.
function handle(body) {
    if (!body || typeof body.channel !== "string" || typeof body.message !== "string") {
        throw new Error("expected a JSON body {channel, message} with two strings");
    }
    if (body.channel !== "updates") {
        throw new Error("this function only posts to the updates channel");
    }
    var text = body.message.trim();
    if (text.length === 0 || text.length > 2000) {
        throw new Error("the message must have 1 to 2000 characters");
    }
    var res = create("events_774_", { channel: body.channel, message: text, postedOn: new Date() });
    if (!res.ok) {
        throw new Error("unable to store the message: " + res.content);
    }
    publish(body.channel, "event", JSON.stringify(res.content));
    log("published", res.content.id, "to", body.channel);
    return res.content;
}
