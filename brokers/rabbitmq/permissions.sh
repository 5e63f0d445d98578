#!/bin/sh
# Who may speak for the kit in namespace "eventkit" on RabbitMQ (docs/security.md): topic
# permissions on the kit's exchange ("eventkit"), by routing key. Usage:
#   permissions.sh VHOST PRODUCER PASSWORD
# The producer may declare and read what it needs, but publish only routing keys under shop.:
# never eventkit.registry, eventkit.rpc.* or eventkit.reply.* (no forged registry records,
# requests or replies). Services use another user with write access to every routing key.
set -eu
VHOST="$1"
PRODUCER="$2"
PASSWORD="$3"
rabbitmqctl add_user "$PRODUCER" "$PASSWORD"
rabbitmqctl set_permissions -p "$VHOST" "$PRODUCER" '.*' '.*' '.*'
rabbitmqctl set_topic_permissions -p "$VHOST" "$PRODUCER" eventkit '^shop\.' '.*'
