#!/usr/bin/python3
# awsconf_check.py DIR... - what botocore resolves for each scenario
# directory, for tests/test_awsconf.c to compare with src/io/awsconf.c.
#
# Each DIR holds `env` (the whole environment, one NAME=value a line) and,
# when a profile is named explicitly, `profile`. For each DIR one line:
#   DIR<TAB>ok<TAB>access_key<TAB>secret_key<TAB>token<TAB>region
# with "-" for None, or
#   DIR<TAB>error<TAB>ExceptionClass
# when get_credentials() or get_config_variable('region') raises.
#
# Run it with Debian's /usr/bin/python3 and its python3-botocore
# (scripts/deps.sh installs it).
import os
import sys

import botocore.session


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def resolve(d):
    env = {}
    for line in read(os.path.join(d, 'env')).splitlines():
        name, _, value = line.partition('=')
        env[name] = value
    # No instance metadata service here: do not wait for one.
    env['AWS_EC2_METADATA_DISABLED'] = 'true'
    os.environ.clear()
    os.environ.update(env)
    profile = read(os.path.join(d, 'profile'))
    session = botocore.session.Session(profile=profile)
    try:
        creds = session.get_credentials()
        region = session.get_config_variable('region')
    except Exception as e:  # any refusal is an error for the comparison
        return 'error\t' + type(e).__name__
    if creds is None:
        fields = [None, None, None]
    else:
        fields = [creds.access_key, creds.secret_key, creds.token]
    fields.append(region)
    return 'ok\t' + '\t'.join('-' if v is None else v for v in fields)


def main():
    for d in sys.argv[1:]:
        print(os.path.basename(d) + '\t' + resolve(d))


if __name__ == '__main__':
    main()
