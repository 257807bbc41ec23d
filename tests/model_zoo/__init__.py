"""User model factories for tests of package.module:function arch specs."""
